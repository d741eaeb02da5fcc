//! The SDP the emulator's signaling hands the Voice SDK: an offer for a call that rings the
//! client and an answer to the offer of a call it places. Templates with one audio section
//! and **no candidates**: the browser applies them (its signaling state becomes `stable`, which
//! is when twilio-voice.js `lib/twilio/rtc/peerconnection.ts` reports the media open and the
//! call `accept`s), ICE stays `new`, no packet is ever sent. Call messages travel on the
//! signaling connection, so they need no media (the SDK may log low-audio warnings).

/// ICE credentials of the templates (RFC 8839: a ufrag of 4 or more characters, a password of
/// 22 or more).
const ICE_UFRAG: &str = "EMUL";
const ICE_PWD: &str = "emulatornomediaemulator0";

fn session(mid: &str, fingerprint: &str, setup: &str, media: &str) -> String {
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        &format!("a=group:BUNDLE {mid}"),
        "a=msid-semantic: WMS",
        media,
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        &format!("a=ice-ufrag:{ICE_UFRAG}"),
        &format!("a=ice-pwd:{ICE_PWD}"),
        &format!("a=fingerprint:sha-256 {fingerprint}"),
        &format!("a=setup:{setup}"),
        &format!("a=mid:{mid}"),
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "",
    ]
    .join("\r\n")
}

/// An offer for an incoming call: PCMU and Opus (the SDK's default codec preferences,
/// `pcmu` then `opus`), DTLS role open to the browser (`actpass`).
pub(crate) fn offer(fingerprint: &str) -> String {
    session(
        "0",
        fingerprint,
        "actpass",
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 111",
    )
}

/// An answer to the browser's offer: its first audio section's `mid`, PCMU and Opus (both
/// in every browser's offer), the DTLS client role (`active`, answering `actpass`).
pub(crate) fn answer(offer: &str, fingerprint: &str) -> String {
    let mid = offer
        .lines()
        .skip_while(|l| !l.starts_with("m=audio"))
        .find_map(|l| l.trim().strip_prefix("a=mid:"))
        .unwrap_or("0");
    session(
        mid,
        fingerprint,
        "active",
        "m=audio 9 UDP/TLS/RTP/SAVPF 0 111",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_takes_the_offers_mid_and_has_no_candidates() {
        let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:audio\r\n";
        let answer = answer(offer, "AB:CD");
        assert!(answer.contains("a=mid:audio\r\n"));
        assert!(answer.contains("a=group:BUNDLE audio\r\n"));
        assert!(answer.contains("a=setup:active\r\n"));
        assert!(answer.contains("a=fingerprint:sha-256 AB:CD\r\n"));
        assert!(!answer.contains("a=candidate"));
        assert!(super::offer("AB:CD").contains("a=setup:actpass\r\n"));
    }
}
