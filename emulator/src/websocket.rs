//! The server side of WebSocket (RFC 6455), as much as the Voice SDK's signaling uses: the
//! opening handshake, text frames in both directions (fragmented or not), ping/pong and close.
//! Written by hand beside the emulator's own HTTP/1.1 server: it is about a hundred lines, and
//! a WebSocket crate would bring a second SHA-1 and `rand` for what the server never needs
//! (servers do not mask).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The largest message read (the SDK's biggest frame is a message of at most 10 KB of content,
/// or an SDP offer of a few KB; refused content still has to arrive to be refused).
const MAX_MESSAGE: usize = 1024 * 1024;

/// The `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455, section 4.2.2).
pub(crate) fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(sha.finalize())
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong,
    /// The client closes (or broke the protocol: it is closed all the same).
    Close,
}

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A server frame (never masked): a whole text message.
pub(crate) fn text(payload: &str) -> Vec<u8> {
    frame(TEXT, payload.as_bytes())
}

/// A pong answering a ping's payload.
pub(crate) fn pong(payload: &[u8]) -> Vec<u8> {
    frame(PONG, payload)
}

/// A close frame with a status code.
pub(crate) fn close(code: u16) -> Vec<u8> {
    frame(CLOSE, &code.to_be_bytes())
}

fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Reads a client's messages.
pub(crate) struct Reader<S> {
    stream: S,
    /// A fragmented message under way (a control frame may come between its fragments).
    partial: Vec<u8>,
    opcode: Option<u8>,
}

impl<S: AsyncRead + Unpin> Reader<S> {
    pub fn new(stream: S) -> Self {
        Reader {
            stream,
            partial: Vec::new(),
            opcode: None,
        }
    }

    /// The next message, fragments joined; `Close` at the end of the stream, on a read error,
    /// or on a frame a client must not send (unmasked, too large, text not UTF-8).
    pub async fn next(&mut self) -> Message {
        loop {
            let Ok((fin, opcode, payload)) = read_frame(&mut self.stream).await else {
                return Message::Close;
            };
            match opcode {
                CLOSE => return Message::Close,
                PING => return Message::Ping(payload),
                PONG => return Message::Pong,
                TEXT | BINARY if self.opcode.is_none() => self.opcode = Some(opcode),
                CONTINUATION if self.opcode.is_some() => {}
                _ => return Message::Close,
            }
            if self.partial.len() + payload.len() > MAX_MESSAGE {
                return Message::Close;
            }
            self.partial.extend_from_slice(&payload);
            if fin {
                let message = std::mem::take(&mut self.partial);
                return match self.opcode.take() {
                    Some(TEXT) => String::from_utf8(message).map_or(Message::Close, Message::Text),
                    _ => Message::Binary(message),
                };
            }
        }
    }
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<(bool, u8, Vec<u8>)> {
    let invalid = |why: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, why.to_owned());
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await?;
    let fin = head[0] & 0x80 != 0;
    let opcode = head[0] & 0x0F;
    // Every frame from a client is masked (RFC 6455, section 5.1).
    if head[1] & 0x80 == 0 {
        return Err(invalid("an unmasked client frame"));
    }
    let len = match head[1] & 0x7F {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).await?;
            u16::from_be_bytes(n) as usize
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).await?;
            usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX)
        }
        n => n as usize,
    };
    if len > MAX_MESSAGE {
        return Err(invalid("a frame too large"));
    }
    let mut mask = [0u8; 4];
    stream.read_exact(&mut mask).await?;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok((fin, opcode, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_key_of_the_rfc_example() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![first];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[tokio::test]
    async fn reads_masked_fragmented_text_and_control_frames() {
        let long = "x".repeat(300);
        let mut bytes = masked(TEXT, b"{\"type\":");
        bytes.extend(masked(PING, b"hi"));
        bytes.extend(masked(0x80 | CONTINUATION, b"\"listen\"}"));
        bytes.extend(masked(0x80 | TEXT, long.as_bytes()));
        bytes.extend(masked(0x80 | CLOSE, &1000u16.to_be_bytes()));
        let mut reader = Reader::new(&bytes[..]);
        // A control frame may come between fragments; it is answered first.
        assert_eq!(reader.next().await, Message::Ping(b"hi".to_vec()));
        assert_eq!(
            reader.next().await,
            Message::Text("{\"type\":\"listen\"}".into())
        );
        assert_eq!(reader.next().await, Message::Text(long));
        assert_eq!(reader.next().await, Message::Close);
        assert_eq!(reader.next().await, Message::Close);
    }

    #[tokio::test]
    async fn an_unmasked_frame_closes() {
        let bytes = [0x81u8, 0x01, b'a'];
        assert_eq!(Reader::new(&bytes[..]).next().await, Message::Close);
    }

    #[test]
    fn server_frames_carry_their_length() {
        assert_eq!(text("\n"), vec![0x81, 1, b'\n']);
        let long = text(&"y".repeat(200));
        assert_eq!(&long[..4], &[0x81, 126, 0, 200]);
        assert_eq!(close(1000), vec![0x88, 2, 0x03, 0xE8]);
    }
}
