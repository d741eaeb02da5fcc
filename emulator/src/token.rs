//! Voice access tokens: Twilio's JWT, minted for tests and checked when a Voice SDK client
//! opens its signaling connection. The format is the one Twilio's helper libraries write
//! (twilio-python `twilio/jwt/__init__.py` and `twilio/jwt/access_token/__init__.py`,
//! `grants.py`): HS256 signed with an API key's secret; header `cty: twilio-fpa;v=1`; claims
//! `jti` (`SK…-<iat>`), `iss` the key's SID, `sub` the account, `exp`, `nbf`, and `grants` with
//! `identity` and `voice` (`incoming.allow`, `outgoing.application_sid`, `outgoing.params`).
//! Any JWT library that writes these claims makes a token the emulator accepts.
//!
//! Written with `hmac`/`sha2`/`base64` (already in the SDK's tree) rather than a JWT crate:
//! one algorithm, a few claims, and the refusals must map to Twilio's codes exactly.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::settings::ApiKey;

/// The outgoing application a minted token names. The emulator places every call the client
/// makes itself (there is no TwiML App to run), so any `AP…` will do; this one says so.
pub const EMULATOR_APPLICATION_SID: &str = "AP00000000000000000000000000000000";

/// Why a token was refused at `listen`, with the code the signaling server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts of JSON, not HS256, or a claim of the wrong type.
    Malformed(String),
    /// The signature does not verify with the secret of the key named by `iss`.
    Signature,
    /// `iss` is no API key of the account.
    UnknownKey(String),
    /// `sub` is another account.
    OtherAccount(String),
    /// `nbf` is in the future.
    NotYetValid,
    /// `exp` has passed.
    Expired,
    /// No `grants.voice`, or no `grants.identity`.
    NoVoiceGrant,
}

impl TokenError {
    /// The signaling error code: 31205 for an expired token, 31201 for a valid one that grants
    /// no voice, 31204 for every other refusal (twilio-voice.js `lib/twilio/device.ts`
    /// `_onSignalingError` maps these three to `AccessTokenExpired`, `AuthenticationFailed`
    /// and `AccessTokenInvalid`). ASSUMPTION: which refusal earns which of the three; Twilio
    /// publishes the codes, not the server's choice.
    pub fn code(&self) -> u32 {
        match self {
            TokenError::Expired => 31205,
            TokenError::NoVoiceGrant => 31201,
            _ => 31204,
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(why) => write!(f, "invalid access token: {why}"),
            TokenError::Signature => f.write_str("invalid access token: bad signature"),
            TokenError::UnknownKey(key) => {
                write!(
                    f,
                    "invalid access token: {key} is no API key of the account"
                )
            }
            TokenError::OtherAccount(sub) => {
                write!(
                    f,
                    "invalid access token: issued for another account ({sub})"
                )
            }
            TokenError::NotYetValid => f.write_str("invalid access token: not valid yet (nbf)"),
            TokenError::Expired => f.write_str("access token expired"),
            TokenError::NoVoiceGrant => {
                f.write_str("the access token has no voice grant with an identity")
            }
        }
    }
}

impl std::error::Error for TokenError {}

/// What a valid token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    pub identity: String,
    /// Seconds since the epoch.
    pub expires_at: u64,
    pub incoming_allow: bool,
    pub outgoing_application_sid: Option<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    grants: Grants,
}

#[derive(Default, Deserialize)]
struct Grants {
    identity: Option<String>,
    voice: Option<Voice>,
}

#[derive(Deserialize)]
struct Voice {
    #[serde(default)]
    incoming: Option<Incoming>,
    #[serde(default)]
    outgoing: Option<Outgoing>,
}

#[derive(Deserialize)]
struct Incoming {
    #[serde(default)]
    allow: bool,
}

#[derive(Deserialize)]
struct Outgoing {
    application_sid: Option<String>,
}

fn sign(secret: &str, signing_input: &str) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(signing_input.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A token for `identity`, valid from `now` for `ttl_secs`, with a voice grant that allows
/// incoming calls and names [`EMULATOR_APPLICATION_SID`] for outgoing ones.
pub(crate) fn mint(account: &str, key: &ApiKey, identity: &str, now: u64, ttl_secs: u64) -> String {
    let header = serde_json::json!({"cty": "twilio-fpa;v=1", "typ": "JWT", "alg": "HS256"});
    let claims = serde_json::json!({
        "jti": format!("{}-{now}", key.sid),
        "iss": key.sid.as_str(),
        "sub": account,
        "nbf": now,
        "exp": now + ttl_secs,
        "grants": {
            "identity": identity,
            "voice": {
                "incoming": {"allow": true},
                "outgoing": {"application_sid": EMULATOR_APPLICATION_SID},
            },
        },
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = URL_SAFE_NO_PAD.encode(sign(&key.secret, &input));
    format!("{input}.{signature}")
}

/// Checks a token as Twilio's signaling does at `listen`: HS256 with the secret of the API key
/// named by `iss`, issued for this account, within `nbf..exp` at `now`, with a voice grant
/// and an identity.
pub(crate) fn check(
    token: &str,
    account: &str,
    keys: &[ApiKey],
    now: u64,
) -> Result<Grant, TokenError> {
    let malformed = |why: &str| TokenError::Malformed(why.to_owned());
    let mut parts = token.trim().split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not a JWT (three dot-separated parts)"));
    };
    let json = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| malformed("a part is not base64url"))
    };
    let head: Header = serde_json::from_slice(&json(header)?)
        .map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
    if head.alg != "HS256" {
        return Err(TokenError::Malformed(format!(
            "algorithm {:?}, not HS256",
            head.alg
        )));
    }
    let body: Claims = serde_json::from_slice(&json(claims)?)
        .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
    let key = keys
        .iter()
        .find(|k| k.sid.as_str() == body.iss)
        .ok_or_else(|| TokenError::UnknownKey(body.iss.clone()))?;
    let given = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .map_err(|_| malformed("the signature is not base64url"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{header}.{claims}").as_bytes());
    // Constant time, as any verifier of a secret should.
    mac.verify_slice(&given)
        .map_err(|_| TokenError::Signature)?;
    if body.sub != account {
        return Err(TokenError::OtherAccount(body.sub));
    }
    if body.nbf.is_some_and(|nbf| nbf > now) {
        return Err(TokenError::NotYetValid);
    }
    if body.exp <= now {
        return Err(TokenError::Expired);
    }
    let (Some(identity), Some(voice)) = (body.grants.identity, body.grants.voice) else {
        return Err(TokenError::NoVoiceGrant);
    };
    Ok(Grant {
        identity,
        expires_at: body.exp,
        incoming_allow: voice.incoming.is_some_and(|i| i.allow),
        outgoing_application_sid: voice.outgoing.and_then(|o| o.application_sid),
    })
}

/// Seconds since the epoch.
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    fn key(secret: &str) -> ApiKey {
        ApiKey {
            sid: "SK0123456789abcdef0123456789abcdef".parse().unwrap(),
            secret: secret.into(),
        }
    }

    /// Signs arbitrary claims as another JWT library would (header fields in another order).
    fn foreign(claims: serde_json::Value, secret: &str) -> String {
        let header = r#"{"alg":"HS256","typ":"JWT","cty":"twilio-fpa;v=1"}"#;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sign(secret, &input)))
    }

    #[test]
    fn a_minted_token_is_accepted_with_its_grant() {
        let token = mint(ACCOUNT, &key("s3cret"), "alice", 1000, 3600);
        let grant = check(&token, ACCOUNT, &[key("s3cret")], 1001).unwrap();
        assert_eq!(grant.identity, "alice");
        assert_eq!(grant.expires_at, 4600);
        assert!(grant.incoming_allow);
        assert_eq!(
            grant.outgoing_application_sid.as_deref(),
            Some(EMULATOR_APPLICATION_SID)
        );
    }

    #[test]
    fn the_helper_libraries_claims_are_accepted() {
        // As twilio-python writes them: jti, grants{identity, voice}, iss, sub, exp, nbf.
        let claims = serde_json::json!({
            "jti": "SK0123456789abcdef0123456789abcdef-1000",
            "grants": {"identity": "bob", "voice": {"outgoing": {"application_sid": "APx", "params": {"a": "b"}}}},
            "iss": "SK0123456789abcdef0123456789abcdef", "sub": ACCOUNT, "exp": 2000, "nbf": 1000,
        });
        let grant = check(&foreign(claims, "k"), ACCOUNT, &[key("k")], 1500).unwrap();
        assert_eq!(grant.identity, "bob");
        assert!(!grant.incoming_allow);
    }

    #[test]
    fn refusals_have_twilios_codes() {
        let keys = [key("right")];
        let bad_sig = mint(ACCOUNT, &key("wrong"), "a", 1000, 60);
        assert_eq!(
            check(&bad_sig, ACCOUNT, &keys, 1001),
            Err(TokenError::Signature)
        );
        assert_eq!(TokenError::Signature.code(), 31204);

        let token = mint(ACCOUNT, &keys[0], "a", 1000, 60);
        let expired = check(&token, ACCOUNT, &keys, 1060).unwrap_err();
        assert_eq!(
            (expired.clone(), expired.code()),
            (TokenError::Expired, 31205)
        );
        assert_eq!(
            check(&token, ACCOUNT, &keys, 999),
            Err(TokenError::NotYetValid)
        );
        let other = "AC".to_owned() + &"f".repeat(32);
        assert!(matches!(
            check(&token, &other, &keys, 1001),
            Err(TokenError::OtherAccount(_))
        ));
        assert!(matches!(
            check(&token, ACCOUNT, &[], 1001),
            Err(TokenError::UnknownKey(_))
        ));

        let no_voice = serde_json::json!({
            "iss": "SK0123456789abcdef0123456789abcdef", "sub": ACCOUNT, "exp": 2000,
            "grants": {"identity": "a", "video": {}},
        });
        let refused = check(&foreign(no_voice, "right"), ACCOUNT, &keys, 1500).unwrap_err();
        assert_eq!(
            (refused.clone(), refused.code()),
            (TokenError::NoVoiceGrant, 31201)
        );

        for junk in ["", "a.b", "a.b.c.d", "!!.??.**"] {
            assert!(matches!(
                check(junk, ACCOUNT, &keys, 1),
                Err(TokenError::Malformed(_))
            ));
        }
        let none_alg = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert!(matches!(
            check(&none_alg, ACCOUNT, &keys, 1),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn a_tampered_claim_breaks_the_signature() {
        let token = mint(ACCOUNT, &key("k"), "alice", 1000, 60);
        let parts: Vec<&str> = token.split('.').collect();
        let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(claims.replace("alice", "mallory"));
        let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
        assert_eq!(
            check(&tampered, ACCOUNT, &[key("k")], 1001),
            Err(TokenError::Signature)
        );
    }
}
